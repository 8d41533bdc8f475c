"""Renderings of library values for the command line: Docker-shaped inspect documents, status
words, tables. Renderers take typed values from the rooms and return text or JSON-ready data;
nothing here touches the store."""
