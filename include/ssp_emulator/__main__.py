from ssp_emulator.server import main

main()
