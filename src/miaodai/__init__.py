"""Miaodai (秒贷): an open-source mobile consumer-lending platform."""

__version__ = "0.1.0"
