"""MallSense firmware_sim package."""
