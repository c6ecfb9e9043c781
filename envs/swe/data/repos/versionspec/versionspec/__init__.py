"""Semantic versions and npm-style ranges."""

from versionspec.ranges import Comparator, Range
from versionspec.version import Version, VersionError

__all__ = ["Comparator", "Range", "Version", "VersionError"]
__version__ = "1.1.0"
