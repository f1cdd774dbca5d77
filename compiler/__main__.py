from lutc.cli import main

main()
