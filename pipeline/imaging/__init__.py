"""Imaging primitives shared by the stages, ``verify`` and ``trace``: decoding, geometry, pixel ops, hashes."""
