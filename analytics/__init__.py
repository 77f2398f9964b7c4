"""MallSense analytics package."""
