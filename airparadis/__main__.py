from airparadis.cli import app

app(prog_name="airparadis")
