"""td3exp: TD3 from pixels with per-module gradient monitoring, explosion alerts and stability reports."""

__version__ = "0.1.0"
