from airparadis_cli.app import main

main()
