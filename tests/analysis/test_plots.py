import itertools

import numpy as np

from analysis.plots import palette


def test_the_first_seven_methods_get_colours_far_apart():
    colours = palette([f"m{i}" for i in range(12)])
    rgb = np.array([colours[f"m{i}"] for i in range(7)])
    # seaborn's own order puts orange and vermillion 0.196 apart in RGB (as 4th and 2nd method)
    assert min(np.linalg.norm(a - b) for a, b in itertools.combinations(rgb, 2)) > 0.29
    assert colours["m10"] == colours["m0"]
