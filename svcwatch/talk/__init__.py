"""Talks: the scripted scenes a presenter steps through, loaded and checked without the UI.

The CLI loads a script before anything is built (a bad one is a one-line error), and the dashboard
plays it; neither needs the other, so the script lives below both.
"""
