import time


def main(argv):
    while True: time.sleep(1)
