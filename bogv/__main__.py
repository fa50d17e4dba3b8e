from bogv.cli import main

main()
