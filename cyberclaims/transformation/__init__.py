"""The transformation stage outside dbt itself: the bookkeeping of the dbt builds of the marts."""
