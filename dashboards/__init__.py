"""MallSense dashboards package."""
