"""The web archive: past issues by date, topic, place, region and contributing organisation, with search,
a feed and a sitemap.

`site.ArchiveSite` lays out every page as (path -> content); `build.build`
writes them as static files, and `newsletter.web.archive` serves them.
"""
