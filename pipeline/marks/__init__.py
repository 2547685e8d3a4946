"""Mark primitives shared by the watermark stage and trace: ``visible`` (rendering the keyed visible mark) and
``fonts`` (the font its text is drawn with, and what that font can draw) and ``logo`` (how large a logo may be).
"""
