"""CARLA 0.9.16 lane keeping as a gymnasium env (``env=carla``).

Importing this package does not import ``carla``: the factory (``td3exp.envs.carla.factory``) does, and
``td3exp.build`` imports it only when ``env=carla`` is chosen.  ``errors`` is safe to import anywhere.
"""
