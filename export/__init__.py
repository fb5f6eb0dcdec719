"""Export of trained models to TFLite (float32 and INT8), their metadata, latency and comparison."""
