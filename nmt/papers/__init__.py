"""Paper reproductions: the jobs of a paper's rows and seeds, and the report in its layout."""
