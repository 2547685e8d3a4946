"""Mark primitives shared by the watermark stage and trace: ``visible`` (rendering the keyed visible mark)."""
