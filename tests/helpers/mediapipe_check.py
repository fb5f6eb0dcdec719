"""Classify images with MediaPipe Tasks' ImageClassifier, a real client of our .tflite files.

Prints one JSON line per image: the image path, the top-1 category (index, score,
category_name) and every category, best first.
MediaPipe takes the label names from the model's metadata (labels.txt, TENSOR_AXIS_LABELS),
the input normalization from its NormalizationOptions (float32 input) and resizes the
image to the model's input size.

Runs in its own environment with ``pip install mediapipe==1.2.2`` (see
tests/helpers/mediapipe_env.py), so this file imports neither TensorFlow nor tfresnet,
and parses its
flags with plain argparse::

    python tests/helpers/mediapipe_check.py model.tflite cat.png dog.jpg [--max-results 5]
"""

import argparse
import json
import sys


def classify(model_path, image_paths, max_results=-1):
    """Runs MediaPipe's ImageClassifier on image files.

    Args:
      model_path: a .tflite image classifier (with metadata for label names).
      image_paths: image files MediaPipe can read (PNG, JPEG).
      max_results: how many categories to return, -1 for all.

    Returns:
      list of dicts, one per image: ``image``, ``top1`` {index, score, category_name}
      and ``categories`` (best first).
    """
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=model_path), max_results=max_results)
    results = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for path in image_paths:
            result = classifier.classify(mp.Image.create_from_file(path))
            categories = [{"index": c.index, "score": float(c.score),
                           "category_name": c.category_name or ""}
                          for c in result.classifications[0].categories]
            results.append({"image": path, "top1": categories[0] if categories else None,
                            "categories": categories})
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="mediapipe_check",
        description="Classify an image with MediaPipe Tasks' ImageClassifier; print JSON.")
    parser.add_argument("model", help=".tflite image classifier")
    parser.add_argument("images", nargs="+", help="image files (PNG or JPEG)")
    parser.add_argument("--max-results", type=int, default=-1,
                        help="number of categories to report (default: all)")
    args = parser.parse_args(argv)
    try:
        for result in classify(args.model, args.images, args.max_results):
            print(json.dumps(result))
    except (ValueError, RuntimeError, OSError) as err:  # how MediaPipe reports a bad model
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"mediapipe_check: error: {text}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
