"""smfusion.products"""
