"""smfusion.synthetic"""
