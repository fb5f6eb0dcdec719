"""The models: each family a spec table and one builder, one registry over them.

* :mod:`~tfresnet.models.families`: one module a family (``resnet``, ``mobilenet``,
  ``alexnet``), each registering its builders with
  :func:`~tfresnet.models.registry.register`; :mod:`~tfresnet.models.layers`: the two
  layers Keras lacks; :mod:`~tfresnet.models._builder`: the signature every builder
  shares.
* :mod:`~tfresnet.models.modelinfo`: ``ModelInfo`` and ``Multipliers``, what the registry
  knows of a model.
* :mod:`~tfresnet.models.registry`: ``register``, ``list_models``, ``model_info``,
  ``get_model``; it imports every family module, and everything outside this package
  asks it (or a :class:`~tfresnet.models.variant.ModelVariant`), never a family.
* :mod:`~tfresnet.models.variant`: a model variant (name, alpha, input side) as one value.
* :mod:`~tfresnet.models.weights`: keras.applications weights into these models.
* :mod:`~tfresnet.models.published`: the papers' figures, each with its source.
* :mod:`~tfresnet.models.profiling`: per-layer parameters and multiply-adds.

Users reach these names at the ``tfresnet`` front door; this ``__init__`` only says
what the folder holds.
"""
