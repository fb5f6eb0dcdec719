"""What the tests share: reference figures, refusal checks, twins, MediaPipe, workers."""
