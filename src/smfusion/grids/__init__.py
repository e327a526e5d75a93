"""smfusion.grids"""
