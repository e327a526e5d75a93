"""smfusion.io"""
