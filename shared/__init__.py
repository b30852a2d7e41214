"""Domain code of the media and MMS backend; function folders are thin shims over this package."""
