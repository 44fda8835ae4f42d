"""Adapters for the private APIs of other libraries: the one place they are used."""
