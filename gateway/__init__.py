"""MallSense gateway package."""
