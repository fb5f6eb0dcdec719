"""One export's final step (``export.job.manifest.publish``) alone in a process, without
TensorFlow, for the fault tests in test_crashsafe.py: strace kills it at a chosen
rename, or ``--hold`` stops it before its first rename (after it read the manifest).

    python tests/helpers/publish_worker.py FOLDER STEM TAG [--hold FILE]

Publishes STEM_float32.tflite, STEM_ptq_int8.tflite, STEM_int8.tflite (bytes made from
STEM and TAG), labels.txt and STEM_results.json, with one manifest entry a model file.
``--hold FILE``: at the first rename, creates FILE.held and waits until FILE exists.
"""

import argparse
import hashlib
import os
import sys
import time

from export.job import manifest  # the front doors are lazy: this imports no TensorFlow

assert "tensorflow" not in sys.modules, "the final step must run without TensorFlow"

KINDS = ("float32", "ptq_int8", "int8")


def model_files(stem, tag) -> dict:
    """{file name: bytes}: distinct content per stem, tag and kind, 2-60 kB."""
    files = {}
    for i, kind in enumerate(KINDS):
        seed = hashlib.sha256(f"{stem}/{tag}/{kind}".encode()).digest()
        files[f"{stem}_{kind}.tflite"] = seed * (64 * (i + 1) + len(tag))
    return files


def hold_first_rename(release):
    real_replace = os.replace
    state = {"held": False}

    def replace(src, dst, **kwargs):
        if not state["held"]:
            state["held"] = True
            open(release + ".held", "w").close()
            deadline = time.monotonic() + 120
            while not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.02)
        return real_replace(src, dst, **kwargs)

    os.replace = replace


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("stem")
    p.add_argument("tag")
    p.add_argument("--hold")
    args = p.parse_args()
    if args.hold:
        hold_first_rename(args.hold)
    files = model_files(args.stem, args.tag)
    entries = [{"file": name, "sha256": hashlib.sha256(content).hexdigest(),
                "size_bytes": len(content), "tag": args.tag}
               for name, content in files.items()]
    files[manifest.LABELS_FILE] = b"a\nb\n"
    files[f"{args.stem}_results.json"] = f'{{"tag": "{args.tag}"}}\n'.encode()
    removed = manifest.publish(args.folder, files, entries, header={"generator": "worker"},
                               say=print)
    print(f"published {args.stem} {args.tag}; removed {len(removed)}", flush=True)


if __name__ == "__main__":
    main()
