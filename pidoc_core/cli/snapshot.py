"""``pidoc snapshot`` (read a snapshot file, summarise it) and ``pidoc observe`` (one mock
observation, written as netCDF)."""

from __future__ import annotations

from pathlib import Path

from .._atomic import atomic_path
from .messages import cli_message
from .reading import _read, add_reader_arguments


def _atomic_netcdf(dataset, path: Path) -> None:
    """Write a Dataset to netCDF through a temporary file renamed into place."""
    with atomic_path(path, suffix=".nc") as tmp:
        dataset.to_netcdf(tmp)


def _cmd_snapshot(args) -> int:
    from ..photometry import snapshot_v_luminosity

    snap = _read(args)
    print(repr(snap))
    if snap.meta.get("missing_reason"):
        print(f"  {cli_message(snap.meta['missing_reason'])}")
        print(f"  density centre {snap.density_centre.round(3).tolist()} pc")
        return 0
    print(f"  V-band luminosity {snapshot_v_luminosity(snap).sum():.4g} Lsun; "
          f"density centre {snap.density_centre.round(3).tolist()} pc; "
          f"kstar {'present' if snap.kstar is not None else 'absent'}")
    return 0


def _cmd_observe(args) -> int:
    from ..imager import ObservationSetup, observe

    snap = _read(args)
    setup = ObservationSetup(distance_kpc=args.distance, psf_fwhm_arcsec=args.psf,
                             shift_arcsec=tuple(args.shift), rotation_deg=args.rotation,
                             line_of_sight=args.line_of_sight)
    obs = observe(snap, setup)
    _atomic_netcdf(obs, Path(args.out))
    print(f"wrote {args.out}: field mass {obs.attrs['field_mass_msun']:.4g} Msun, "
          f"field L_V {obs.attrs['field_luminosity_v_lsun']:.4g} Lsun")
    return 0


def add_snapshot_commands(sub) -> None:
    """Add ``snapshot`` and ``observe`` to the ``pidoc`` sub-parsers."""
    p = sub.add_parser("snapshot", help="read a snapshot file and summarise it")
    p.add_argument("path")
    add_reader_arguments(p)
    p.set_defaults(func=_cmd_snapshot)

    p = sub.add_parser("observe", help="mock-observe a snapshot file, write netCDF")
    p.add_argument("path")
    add_reader_arguments(p)
    p.add_argument("--distance", type=float, required=True, help="distance, kpc")
    p.add_argument("--psf", type=float, required=True, help="PSF FWHM, arcsec")
    p.add_argument("--shift", type=float, nargs=2, default=(0.0, 0.0), metavar=("DX", "DY"),
                   help="centre shift, arcsec")
    p.add_argument("--rotation", type=float, default=0.0, help="rotation, degrees")
    p.add_argument("--line-of-sight", default="z", choices=("x", "y", "z"))
    p.add_argument("--out", required=True, help="output netCDF path")
    p.set_defaults(func=_cmd_observe)
