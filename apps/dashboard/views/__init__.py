"""Thin UI views: parse the request, call a selector or a service, render a template."""
