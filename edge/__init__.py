"""MallSense edge package."""
