"""What composes the library into a study: pretraining the embedded base, and the demo."""
