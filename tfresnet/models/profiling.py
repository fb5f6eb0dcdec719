"""Per-layer parameters and multiply-adds (MACs) of any Keras functional model.

The count is the papers' (ResNet, arXiv:1512.03385, Table 1; MobileNets,
arXiv:1704.04861; as keras.applications and torchvision count): a
convolution costs one
multiply-add per kernel weight per output position, so

* Conv2D: ``H_out * W_out * (C_in / groups) * C_out * K_h * K_w``,
* DepthwiseConv2D: ``H_out * W_out * C_in * multiplier * K_h * K_w``,
* SeparableConv2D: its depthwise plus its pointwise part,
* Conv2DTranspose: one multiply-add per kernel weight per *input* position,
* Dense: ``in * units`` per position (one position for a flat input),

and BatchNormalization, activations, pooling and additions cost nothing. Biases are
not counted. Parameters are Keras counts, split into trainable and non-trainable (BN
moving statistics). Nested models are profiled layer by layer, their rows named
``outer/inner``, with the sizes of their own graph; a layer or nested model called
several times counts the multiply-adds of each call and its parameters once.

Command line (:mod:`tfresnet.models.profile_command`)::

    python -m tfresnet.profile mobilenet_v1 --alpha 0.75 --res 160

prints the per-layer table, then the totals beside the published figures
(:mod:`tfresnet.models.published`: the papers, keras.applications and torchvision) where
there are some.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import keras

from tfresnet.utils import tables

_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
          keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
               keras.layers.Conv3DTranspose)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)


@dataclasses.dataclass(frozen=True)
class Row:
    """One layer of a :class:`Profile`.

    Attributes:
      name: layer name (``outer/inner`` inside a nested model).
      type: layer class name.
      output_shape: output shape without the batch dimension (the first output's).
      params: trainable + non-trainable parameters.
      macs: multiply-adds of one example (0 for layers that are not counted).
      trainable: trainable parameters.
      non_trainable: non-trainable parameters (e.g. BN moving mean and variance).
    """

    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int
    trainable: int
    non_trainable: int


@dataclasses.dataclass(frozen=True)
class Profile:
    """Per-layer rows and totals of a model; ``str()`` gives the pretty table."""

    name: str
    input_shape: tuple
    rows: tuple[Row, ...]

    @property
    def trainable(self) -> int:
        return sum(r.trainable for r in self.rows)

    @property
    def non_trainable(self) -> int:
        return sum(r.non_trainable for r in self.rows)

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def summary(self) -> str:
        """One line of totals, e.g. ``4.25M params (...), 568.7M MACs``."""
        return (f"{format_count(self.params)} params ({self.trainable:,} trainable + "
                f"{self.non_trainable:,} non-trainable), {format_count(self.macs)} MACs")

    def table(self) -> str:
        """The per-layer table as aligned text, with a totals line."""
        header = ("layer", "type", "output shape", "params", "MACs")
        body = [(r.name, r.type, shape_text(r.output_shape), f"{r.params:,}",
                 f"{r.macs:,}") for r in self.rows]
        total = ("total", "", "", f"{self.params:,}", f"{self.macs:,}")
        lines = tables.table(header, [*body, total], left=3, rule=True).split("\n")
        lines.insert(-1, lines[1])  # the rule again above the totals
        return "\n".join(lines + [f"{self.name}: {self.summary()}"])

    def to_markdown(self) -> str:
        """The per-layer table in Markdown, with a totals row."""
        body = [(r.name, r.type, shape_text(r.output_shape), f"{r.params:,}", f"{r.macs:,}")
                for r in self.rows]
        total = ("**total**", "", "", f"**{self.params:,}**", f"**{self.macs:,}**")
        return tables.table(("layer", "type", "output shape", "params", "MACs"),
                            [*body, total], markdown=True, left=3)

    def to_dict(self) -> dict:
        """Totals and rows as plain JSON-ready values."""
        return {"model": self.name, "input_shape": list(self.input_shape),
                "params": self.params, "trainable": self.trainable,
                "non_trainable": self.non_trainable, "macs": self.macs,
                "layers": [{**dataclasses.asdict(r), "output_shape": list(r.output_shape)}
                           for r in self.rows]}

    def __str__(self) -> str:
        return self.table()


_UNITS = (("G", 1e9), ("M", 1e6), ("K", 1e3))


def format_count(n: float, exact: bool = False) -> str:
    """A count with a unit: ``4253864`` -> ``"4.25M"``, ``3.86e9`` -> ``"3.86G"``,
    ``166396800`` -> ``"166.4M"``; ``exact=True`` keeps a published figure's own
    digits (``166e6`` -> ``"166M"``, ``3.8e9`` -> ``"3.8G"``)."""
    for unit, scale in _UNITS:
        if abs(n) >= scale:
            value = n / scale
            if exact:
                return f"{value:g}{unit}"
            return f"{value:.2f}{unit}" if abs(value) < 10 else f"{value:.1f}{unit}"
    return f"{n:g}"


def profile(model, print_table: bool = True, file=None) -> Profile:
    """Counts each layer's parameters and multiply-adds.

    Args:
      model: a built functional or Sequential ``keras.Model`` with a fixed input
        size (or a registry name, built with its defaults).
      print_table: print the per-layer table and totals.
      file: where to print (default ``sys.stdout``).

    Returns:
      The :class:`Profile`.

    Raises:
      ValueError: for a model that is not a functional graph, or an input size
        that is not fixed (MACs depend on it).
    """
    if isinstance(model, str):
        from tfresnet.models.registry import get_model
        model = get_model(model)
    if not isinstance(model, keras.Model):
        raise ValueError(f"profile needs a Keras 3 model (keras.Model). Received: model={model!r}")
    _check_graph(model)
    result = Profile(name=model.name, input_shape=_drop_batch(model.input_shape),
                     rows=tuple(_rows(model, prefix="")))
    if print_table:
        print(result.table(), file=file or sys.stdout)
    return result


def _check_graph(model):
    if not hasattr(model, "_nodes_by_depth"):  # Keras 3 functional (or built Sequential)
        raise ValueError(f"profile needs a functional or built Sequential model; "
                         f"{model.name!r} is a subclassed or unbuilt model. "
                         f"Received: model={model.name!r}")


def _rows(model, prefix):
    _check_graph(model)
    if isinstance(model, keras.Sequential):
        model = model._functional  # the graph a built Sequential model runs
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            calls = len(_nodes_in(model, layer))
            for row in _rows(layer, prefix=f"{prefix}{layer.name}/"):
                yield dataclasses.replace(row, macs=row.macs * calls)
            continue
        nodes = _nodes_in(model, layer)
        trainable = _count(layer.trainable_weights)
        non_trainable = _count(layer.non_trainable_weights)
        yield Row(name=prefix + layer.name, type=type(layer).__name__,
                  output_shape=_drop_batch(_shape(nodes[0].output_tensors)),
                  params=trainable + non_trainable,
                  macs=sum(layer_macs(layer, _shape(n.input_tensors), _shape(n.output_tensors))
                           for n in nodes),
                  trainable=trainable, non_trainable=non_trainable)


def _nodes_in(model, layer):
    """The calls of ``layer`` that belong to ``model``'s graph."""
    keys = model._nodes  # Keras 3 keeps "<id(layer)>_ib-<index>" for the model's nodes.
    nodes = [n for i, n in enumerate(layer._inbound_nodes) if f"{id(layer)}_ib-{i}" in keys]
    return nodes or layer._inbound_nodes[:1]


def layer_macs(layer, input_shape, output_shape) -> int:
    """Multiply-adds of one call of ``layer`` on one example (0 if not counted)."""
    if isinstance(layer, _SEPARABLE):
        kernel = _size(layer.depthwise_kernel) + _size(layer.pointwise_kernel)
        return _positions(layer, output_shape) * kernel
    if isinstance(layer, _TRANSPOSED):
        return _positions(layer, input_shape) * _size(layer.kernel)
    if isinstance(layer, _CONVS):
        kernel = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel
        return _positions(layer, output_shape) * _size(kernel)
    if isinstance(layer, keras.layers.Dense):
        return _positions(layer, output_shape) * _size(layer.kernel)
    return 0


def _positions(layer, shape):
    """Spatial positions of a feature map (channels-last or -first); 1 for a vector."""
    dims = list(shape[1:])
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        dims = dims[1:]
    else:
        dims = dims[:-1]
    if any(d is None for d in dims):
        raise ValueError(f"Cannot count the multiply-adds of layer {layer.name!r}: its size "
                         f"is not fixed; build the model with a fixed input_shape. "
                         f"Received: shape={tuple(shape)!r}")
    return math.prod(dims)


def _size(variable) -> int:
    return math.prod(int(d) for d in variable.shape)


def _count(weights) -> int:
    return sum(_size(w) for w in weights)


def _shape(tensors) -> tuple:
    """The shape of a node's first tensor."""
    return tuple(tensors[0].shape)


def _first(shapes):
    """The first shape of a node's shape (or list of shapes)."""
    if isinstance(shapes, list) and shapes and isinstance(shapes[0], (tuple, list)):
        return tuple(shapes[0])
    return tuple(shapes)


def _drop_batch(shape):
    return tuple(_first(shape))[1:]


def shape_text(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _diff(measured, reference) -> str:
    return f"{100 * (measured - reference) / reference:+.2f}%"


def totals_text(result: Profile, figures=None) -> str:
    """The totals, each beside its published figure and the % difference, if any.

    Args:
      result: the model's :class:`Profile`.
      figures: a :class:`tfresnet.models.published.Published` (or None).
    """
    params = (f"params: {format_count(result.params)} ({result.params:,} = "
              f"{result.trainable:,} trainable + {result.non_trainable:,} non-trainable)")
    macs = f"MACs:   {format_count(result.macs)} ({result.macs:,})"
    if figures and figures.trainable is not None:
        total = figures.trainable + figures.non_trainable
        params += (f"; published {figures.trainable:,} + {figures.non_trainable:,} "
                   f"({_diff(result.params, total)}, {figures.params_source})")
    if figures and figures.macs is not None:
        macs += (f"; published {format_count(figures.macs, exact=True)} "
                 f"({_diff(result.macs, figures.macs)}, {figures.macs_source})")
    return f"{params}\n{macs}"
