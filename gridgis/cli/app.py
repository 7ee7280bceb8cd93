"""The typer application every command module registers on."""

import typer

app = typer.Typer(
    name="gridgis",
    help="Grid-management GIS for Chinese urban community governance (城乡社区网格化服务管理).\n\n"
    "Start with:  gridgis demo --out out/   then   gridgis info out/demo.gpkg",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
