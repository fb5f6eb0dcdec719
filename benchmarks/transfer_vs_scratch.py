"""Transfer beats training from scratch on few images, offline.

A backbone is trained on the digits 0-4 (sklearn's digits written as an image folder),
then the digits 5-9 are learnt from 10 images a class: once starting from that run
(``tfresnet.train.fit(weights=run)``: half the epochs the new classifier alone, then
fine-tuning) and once from scratch, with the same epochs, batch (the small-data
default, 8), steps and seed, for each seed. Accuracy is measured on all the other
images of the digits 5-9 (about 850).

    python benchmarks/transfer_vs_scratch.py                       # ResNet-20, MobileNet 0.25
    python benchmarks/transfer_vs_scratch.py --models resnet20 --seeds 0
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfresnet import cli, data, recipes, registry, train  # noqa: E402  (first: quiets TF)

MODELS = {"resnet20": ("resnet20", {}, 32),
          "mobilenet_v1_0.25": ("mobilenet_v1", {"alpha": 0.25, "res": 32}, 32)}
SOURCE_EPOCHS = 6
EPOCHS = 10
PER_CLASS = 10


def write_digits(root, classes, side, pick=None, skip=None, per_class=None, seed=0):
    """sklearn's digits of ``classes`` as PNG files, one folder a class; returns the
    indices written. ``per_class`` picks that many a class (seeded); ``skip`` leaves
    out indices."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    written = set()
    for c in classes:
        index = [i for i in np.flatnonzero(digits.target == c) if not skip or i not in skip]
        if per_class:
            index = sorted(rng.choice(index, per_class, replace=False))
        os.makedirs(os.path.join(root, str(c)), exist_ok=True)
        for i in index:
            image = Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8))
            image.resize((side, side), Image.BILINEAR).convert("RGB").save(
                os.path.join(root, str(c), f"{i}.png"))
            written.add(int(i))
    return written


def few_shot_split(root, side, seed) -> data.DataSplit:
    """10 images a class of the digits 5-9 to train on, all the others to test on."""
    few, rest = os.path.join(root, f"few{seed}"), os.path.join(root, f"rest{seed}")
    chosen = write_digits(few, range(5, 10), side, per_class=PER_CLASS, seed=seed)
    write_digits(rest, range(5, 10), side, skip=chosen)
    a = data.load(few, image_size=side, val_fraction=0.5, seed=seed)
    b = data.load(rest, image_size=side, val_fraction=0.5, seed=seed)
    return data.DataSplit(train=a.train.concatenate(a.val), val=b.train.concatenate(b.val),
                          labels=a.labels, num_train=a.num_train + a.num_val,
                          num_val=b.num_train + b.num_val, name=f"digits 5-9, {PER_CLASS} a "
                          f"class (seed {seed})", image_size=a.image_size)


def measure(key, seeds=(0, 1, 2), work=None, verbose=0):
    """{"source": val acc of the digits 0-4 run, "rows": [(seed, scratch, transfer)]}."""
    name, kwargs, side = MODELS[key]
    work = work or tempfile.mkdtemp(prefix="transfer-")
    source_dir = os.path.join(work, f"{key}_digits04")
    folder = os.path.join(work, "digits04")
    if not os.path.isdir(folder):
        write_digits(folder, range(5), side)
    common = dict(strategy="default", verbose=verbose, model_kwargs=kwargs or None,
                  image_size=side)
    source = train.fit(name, dataset=folder, epochs=SOURCE_EPOCHS, batch_size=16,
                       lr=recipes.get_recipe(registry.model_info(name).recipe).lr,
                       augment="none", out_dir=source_dir, overwrite=True, **common)
    rows = []
    for seed in seeds:
        split = few_shot_split(work, side, seed)
        scratch = train.fit(name, dataset=split, epochs=EPOCHS, seed=seed, **common)
        transfer = train.fit(name, dataset=split, epochs=EPOCHS, seed=seed,
                             weights=source_dir, **common)
        assert scratch.config["steps_per_epoch"] == transfer.config["steps_per_epoch"]
        rows.append((seed, scratch.val_accuracy, transfer.val_accuracy))
    return {"source": source.val_accuracy, "rows": rows,
            "steps": EPOCHS * scratch.config["steps_per_epoch"]}


def main(argv=None):
    p = cli.ArgumentParser(prog="python benchmarks/transfer_vs_scratch.py",
                           description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS),
                   help=f"comma-separated, of {', '.join(MODELS)} (default both)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    args = p.parse_args(argv)
    models = args.models.split(",")
    for key in models:
        if key not in MODELS:
            raise ValueError(f"--models takes {', '.join(MODELS)}. Received: {key!r}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise ValueError(f"--seeds takes integers separated by commas. "
                         f"Received: {args.seeds!r}") from None
    for key in models:
        result = measure(key, seeds)
        print(f"{key}: backbone trained on the digits 0-4 ({SOURCE_EPOCHS} epochs, val "
              f"accuracy {result['source']:.4f}); digits 5-9 from {PER_CLASS} images a "
              f"class, {EPOCHS} epochs = {result['steps']} steps, tested on the others")
        for seed, scratch, transfer in result["rows"]:
            print(f"  seed {seed}: scratch {scratch:.4f}  transfer {transfer:.4f}  "
                  f"gap {transfer - scratch:+.4f}")
        gaps = [t - s for _, s, t in result["rows"]]
        print(f"  mean gap {sum(gaps) / len(gaps):+.4f}, smallest {min(gaps):+.4f}",
              flush=True)


if __name__ == "__main__":
    cli.run(main, prog="transfer_vs_scratch")
