"""Tests for imaging/productbox.py: the product's box on a known background and the fill of a frame."""

from __future__ import annotations

import numpy as np

from pipeline.imaging.productbox import fill_of, mask_box, product_box, product_mask


def test_box_of_a_product_on_white_ignores_faint_shadow_and_specks() -> None:
    a = np.full((200, 300, 3), 255, np.uint8)
    a[40:160, 100:220] = (120, 60, 30)  # the product
    a[160:175, 100:220] = (245, 245, 245)  # a soft shadow under it: within the tolerance (16)
    a[5, 5] = (0, 0, 0)  # one speck: a row/column needs more than min_frac of its pixels
    assert product_box(a, (255, 255, 255)) == (100, 40, 220, 160)


def test_box_on_another_background_and_blank_images() -> None:
    a = np.full((50, 80, 3), (10, 20, 30), np.uint8)
    assert product_box(a, (10, 20, 30)) is None
    a[10:20, 30:60] = 255
    assert product_box(a, (10, 20, 30)) == (30, 10, 60, 20)


def test_mask_box_works_on_views() -> None:
    m = np.zeros((40, 60), bool)
    m[5:10, 20:50] = True
    assert mask_box(m.T) == (5, 20, 10, 50)
    assert mask_box(m[::-1]) == (20, 30, 50, 35)


def test_fill_is_the_longer_extent_fraction() -> None:
    assert fill_of((100, 300, 1800, 1700), (2000, 2000)) == 0.85
    assert fill_of((0, 0, 100, 50), (200, 50)) == 1.0
    a = np.full((10, 10, 3), 255, np.uint8)
    a[2, 2] = (200, 200, 200)
    assert product_mask(a, (255, 255, 255)).sum() == 1
