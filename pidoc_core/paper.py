"""The paper's numbers: Chardin & Bianchini (2021, MNRAS 504, 5656), in one place.

Table 1's grid (runs, distances, seeing), the conditions the published networks were trained on,
the results the paper quotes (Sect. 4) and its statement of the training luminosity range
(Sect. 5, Fig. 10). Distances in kpc, PSF FWHMs and shifts in arcsec, rotations in degrees, ages
in Gyr, luminosities in Lsun, percentages in per cent. Everything else imports these.
"""

from __future__ import annotations

__all__ = [
    "REFERENCE",
    "TRAIN_RUNS",
    "TEST_RUN",
    "TRAIN_DISTANCES_KPC",
    "TRAIN_PSFS_ARCSEC",
    "TEST_DISTANCES_KPC",
    "TEST_PSFS_ARCSEC",
    "TRAINING_GRID",
    "LUMINOSITY_RANGE",
    "RESULTS",
]

#: The paper.
REFERENCE = "Chardin & Bianchini (2021, MNRAS 504, 5656)"

# -- Table 1 ------------------------------------------------------------------------------------

#: Runs of the training and validation sets (Table 1: MW15-R1.6 and MW15-R4).
TRAIN_RUNS = ("MW15-R1.6 analogue", "MW15-R4 analogue")
#: Run of the test set (Table 1: MW15, rh0 = 3.2 pc).
TEST_RUN = "MW15 analogue"
#: Distances of the training and validation sets, kpc.
TRAIN_DISTANCES_KPC = (10.0, 25.0, 50.0, 75.0, 100.0)
#: Seeing (PSF FWHM) of the training and validation sets, arcsec.
TRAIN_PSFS_ARCSEC = (0.5, 1.5)
#: Distances of the test set, kpc (Sect. 2.3 text and the v0.1 test files; Table 1 prints
#: "15-20-60-80", which we take for a typo of 15-30-60-80).
TEST_DISTANCES_KPC = (15.0, 30.0, 60.0, 80.0)
#: Seeing of the test set, arcsec.
TEST_PSFS_ARCSEC = (1.0,)

#: Conditions of the paper's training set (Table 1, Sect. 2.3): distances (kpc), PSF FWHMs
#: (arcsec), maximum centre shift (arcsec), rotations (deg), snapshot times (Gyr).
TRAINING_GRID = {
    "distance_kpc": TRAIN_DISTANCES_KPC,
    "psf_fwhm_arcsec": TRAIN_PSFS_ARCSEC,
    "shift_max_arcsec": 5.0,
    "rotations_deg": (0.0, 90.0, 180.0, 270.0),
    "time_gyr": (0.0, 14.0),
}

#: The paper's statement of its training set's field luminosity (Sect. 5, Fig. 10): for ages
#: > 11 Gyr and distances 10-40 kpc the field luminosity lies in ~300-5000 Lsun (mean 1754 Lsun).
LUMINOSITY_RANGE = {
    "luminosity_v_lsun": (300.0, 5000.0),
    "distance_kpc": (10.0, 40.0),
    "age_min_gyr": 11.0,
    "mean_lsun": 1754.0,
    "source": "Chardin & Bianchini (2021) Sect. 5 / Fig. 10: ~300-5000 Lsun for ages > 11 Gyr "
              "at 10-40 kpc",
}

# -- Sect. 4: published results -------------------------------------------------------------------


def _src(section, where, quote):
    return {"section": section, "where": where, "quote": quote}


#: Numbers quoted in Chardin & Bianchini (2021, MNRAS 504, 5656), with where they are in the text.
#: Keys match the rows of :func:`pidoc_core.evaluation.summary`. Percentages in per cent, ages Gyr, distances kpc.
RESULTS: dict[str, dict] = {
    # Sect. 4.1.2, paragraph after eq. (2): per-pixel mass, bins of predicted mass (Fig. 5).
    "pixel_mpe_mean": {"value": 27.4, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)",
        "We report an average percentage error of 27.4 per cent over all mass bins")},
    "pixel_mpe_min": {"value": 13.7, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)", "with a minimum value of 13.7 per cent")},
    "pixel_mpe_max": {"value": 95.0, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)", "and a maximum values of 95.0 per cent")},
    "pixel_mpe_mean_excl_low": {"value": 17.6, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)",
        "If we exclude these low mass bins [log10(M/Msun) < -1], we obtain a mean error of "
        "17.6 per cent")},
    "pixel_mpe_min_excl_low": {"value": 13.7, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)", "with a minimum and a maximum of 13.7 per cent")},
    "pixel_mpe_max_excl_low": {"value": 22.1, "unit": "%", **_src(
        "4.1.2", "paragraph after eq. (2)", "and 22.1 per cent, respectively")},
    # Sect. 4.1.3, last paragraph: totals per map (Fig. 6).
    "total_mass_mpe_mean": {"value": 15.6, "unit": "%", **_src(
        "4.1.3", "last paragraph",
        "an average percentage error for the total mass estimate of 15.6 per cent over all the "
        "bins")},
    "total_mass_mpe_min": {"value": 6.2, "unit": "%", **_src(
        "4.1.3", "last paragraph", "with a minimum value of 6.2 per cent")},
    "total_mass_mpe_max": {"value": 43.5, "unit": "%", **_src(
        "4.1.3", "last paragraph", "and a maximum value of 43.5 per cent")},
    "total_ml_mpe_mean": {"value": 11.8, "unit": "%", **_src(
        "4.1.3", "last paragraph", "For Mtot/Ltot, we obtain a mean error of 11.8 per cent")},
    "total_ml_mpe_min": {"value": 5.1, "unit": "%", **_src(
        "4.1.3", "last paragraph", "with a minimum of 5.1 per cent error")},
    "total_ml_mpe_max": {"value": 18.1, "unit": "%", **_src(
        "4.1.3", "last paragraph", "and a maximum of 18.1 per cent")},
    # Sect. 4.2.1, paragraph after eq. (4) (Fig. 8).
    "age_mae_mean": {"value": 1.26, "unit": "Gyr", **_src(
        "4.2.1", "paragraph after eq. (4)",
        "an average value of the mean absolute error of 1.26 Gyr over all age bins")},
    "age_mae_min": {"value": 0.33, "unit": "Gyr", **_src(
        "4.2.1", "paragraph after eq. (4)", "with a minimum value of 0.33 Gyr")},
    "age_mae_max": {"value": 1.64, "unit": "Gyr", **_src(
        "4.2.1", "paragraph after eq. (4)", "and a maximum value of 1.64 Gyr")},
    # Sect. 4.2.2, Table 2 (Fig. 9); test maps at 15, 30, 60, 80 kpc.
    **{f"distance_{stat}_{d}": {"value": v, "unit": "kpc", **_src(
        "4.2.2", "Table 2", f"Real distance {d} kpc: {label} {v} kpc")}
       for d, row in {15: (20.3, 5.0, 5.6), 30: (35.2, 8.3, 7.4), 60: (60.6, 8.8, 6.5),
                      80: (77.6, 7.9, 6.0)}.items()
       for stat, label, v in zip(("mean", "std", "mae"),
                                 ("mean predicted distance", "standard deviation",
                                  "mean absolute error"), row)},
    # Sect. 3.2, Fig. 3: R^2 of eq. (1) on the *validation* set (training curves), not the test.
    "mass_r2": {"value": 0.95, "unit": "", **_src(
        "3.2", "discussion of Fig. 3 (validation set)",
        "saturating values of ~0.95 and ~0.98 for the encoder-decoder and the CNN")},
    "age_distance_r2": {"value": 0.98, "unit": "", **_src(
        "3.2", "discussion of Fig. 3 (validation set)",
        "saturating values of ~0.95 and ~0.98 for the encoder-decoder and the CNN")},
    # Abstract (rounded, and the age differs from Sect. 4.2.1's 1.26 Gyr).
    "abstract_pixel_error": {"value": 27.0, "unit": "%", **_src(
        "Abstract", "", "predict the mass distribution with a mean error per pixel of 27 per "
        "cent")},
    "abstract_age_accuracy": {"value": 1.5, "unit": "Gyr", **_src(
        "Abstract", "", "and the age and distance with an accuracy of 1.5 Gyr and 6 kpc")},
    "abstract_distance_accuracy": {"value": 6.0, "unit": "kpc", **_src(
        "Abstract", "", "and the age and distance with an accuracy of 1.5 Gyr and 6 kpc")},
    "abstract_ml_error": {"value": 12.0, "unit": "%", **_src(
        "Abstract", "", "the mass-to-light profile and its global value with a mean error of "
        "12 per cent")},
    # Sect. 4.1: speed of the encoder-decoder.
    "mass_prediction_time": {"value": 0.070, "unit": "s per map", **_src(
        "4.1", "first paragraph",
        "The prediction of a single mass map takes about 70 ms on a single Intel Xeon CPU at "
        "2.70 GHz")},
}
