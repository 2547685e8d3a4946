"""Embedded-metadata primitives shared by the fingerprint and export stages, ``verify`` and ``trace``.

One job per module: ``text`` (value hygiene every block shares), ``claim`` (the signed claim: fields, signed
bytes, sign, verify), ``exif`` (EXIF writer), ``xmp`` (XMP writer and parser), ``iptc`` (IPTC IIM encoder),
``embed`` (the encoder arguments and the post-encode step per format), ``read`` (embedded metadata back from a
file's bytes), ``check`` (a file's claim against a trusted key and its pixels) and ``source`` (the photographer's
fields a preset or the owner profile keeps, read from a source photo). Nothing here knows the
ledger or the stage order.
"""
