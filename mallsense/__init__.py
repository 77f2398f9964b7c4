"""MallSense: the `mallsense` command and the local real-server runner."""

__version__ = "0.1.0"
