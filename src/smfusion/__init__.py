"""smfusion: machine-learning soil-moisture products from satellite and in-situ data."""

__version__ = "0.1.0"
