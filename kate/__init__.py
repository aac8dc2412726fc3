"""kate"""
