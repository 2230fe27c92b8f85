from airparadis.cli import main

main()
