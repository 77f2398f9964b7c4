"""MallSense locate package."""
