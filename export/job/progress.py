"""The export job's progress lines on the terminal."""


def say(text):
    """One progress line of the export on the terminal."""
    print(f"[export] {text}", flush=True)
