"""``pidoc predict``: the command line of the observed-image pipeline."""

from __future__ import annotations

import argparse
import sys
import warnings

from ._common import ObservationInputError, RangeWarning
from .figure import _fmt, write_figure
from .predict import predict_image, write_netcdf

__all__ = ["add_predict_arguments", "run_predict"]


def add_predict_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``pidoc predict IMAGE.fits [--g G.fits --r R.fits] (--centre RA DEC |
    --cluster NAME) [--distance KPC] [--extinction AV] [--weights DIR] --out PREFIX``."""
    parser.add_argument("image", nargs="?", default=None,
                        help="calibrated V-band FITS image (counts, celestial WCS); omit with "
                             "--g/--r")
    parser.add_argument("--g", dest="g_image", default=None, help="PS1 g stack (FITS)")
    parser.add_argument("--r", dest="r_image", default=None, help="PS1 r stack (FITS)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--centre", "--center", nargs=2, metavar=("RA", "DEC"),
                       help="field centre: degrees, or sexagesimal (RA in hours, e.g. 13:16:27.09)")
    where.add_argument("--cluster", help="a catalogue cluster (paper Table 3), e.g. 'NGC 5053'")
    parser.add_argument("--distance", type=float, default=None,
                        help="distance in kpc for L_FoV and M/L (default: the catalogue's, "
                             "else pi-DOC's)")
    parser.add_argument("--extinction", type=float, default=0.0, help="A_V in mag (default 0)")
    parser.add_argument("--zero-point", type=float, default=None,
                        help="zero point, mag for 1 count (default from the header)")
    parser.add_argument("--background", choices=("none", "median", "mesh"), default="none",
                        help="background subtraction (default none)")
    parser.add_argument("--hdu", type=_hdu_arg, default=None,
                        help="FITS extension of the image: index or EXTNAME (default: the first "
                             "HDU with 2-D data)")
    parser.add_argument("--weights", default=None,
                        help="saved model directory, the v0.1 release directory or a shipped "
                             "model's name (paper, wide; default: wide when it is shipped, else "
                             "paper)")
    parser.add_argument("--out", required=True,
                        help="output prefix: writes PREFIX.nc, PREFIX.png, PREFIX.html")
    return parser


def _hdu_arg(text: str):
    """``--hdu``: an HDU index (integer) or an EXTNAME."""
    return int(text) if text.lstrip("-").isdigit() else text


def _load_model(weights):
    from ..model import ModelError, observation_model

    try:
        return observation_model(weights)
    except ModelError as exc:
        raise SystemExit(f"pidoc predict: {exc}") from None


def run_predict(args) -> int:
    """Run ``pidoc predict`` from parsed arguments (see :func:`add_predict_arguments`)."""
    ps1 = args.g_image is not None or args.r_image is not None
    if ps1 and (args.g_image is None or args.r_image is None):
        raise SystemExit("pidoc predict: PS1 mode needs both --g and --r")
    if ps1 == (args.image is not None):
        raise SystemExit("pidoc predict: give either IMAGE or both --g and --r")
    model = _load_model(args.weights)
    background = None if args.background == "none" else args.background
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RangeWarning)
            if ps1:
                ds = predict_image(g=args.g_image, r=args.r_image, centre=args.centre,
                                   cluster=args.cluster, model=model, distance_kpc=args.distance,
                                   extinction_av=args.extinction, background=background,
                                   zero_point_g=args.zero_point, zero_point_r=args.zero_point,
                                   hdu=getattr(args, "hdu", None))
            else:
                ds = predict_image(args.image, centre=args.centre, cluster=args.cluster,
                                   model=model, distance_kpc=args.distance,
                                   extinction_av=args.extinction, zero_point=args.zero_point,
                                   background=background, hdu=getattr(args, "hdu", None))
    except ObservationInputError as exc:
        raise SystemExit(f"pidoc predict: {exc}") from None
    prefix = str(args.out)
    paths = [write_netcdf(ds, prefix + ".nc"), write_figure(ds, prefix + ".png"),
             write_figure(ds, prefix + ".html")]
    name = ds.attrs.get("cluster") or "field"
    print(f"{name}: L_V(FoV) = {float(ds['luminosity_v']):.4g} Lsun at "
          f"{ds.attrs['distance_used_kpc']:g} kpc ({ds.attrs['distance_source']}); "
          f"M = {_fmt(float(ds['field_mass']), '.4g')} Msun, "
          f"M/L_V = {_fmt(float(ds['mass_to_light']), '.3g')}, "
          f"age = {_fmt(float(ds['age']), '.3g')} Gyr, "
          f"d = {_fmt(float(ds['distance']), '.3g')} kpc")
    print(f"training range: {ds.attrs['range_verdict']}; model: {ds.attrs['model']}")
    for w in caught:
        if issubclass(w.category, RangeWarning):
            print(f"WARNING: {w.message}", file=sys.stderr)
    for p in paths:
        print(f"wrote {p}")
    return 0

