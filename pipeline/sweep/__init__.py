"""Sweeps: gather suspects from files, folders, URL lists and listing pages, trace them, keep cases."""
