from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "import_jobs" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "status" VARCHAR(7) NOT NULL /* QUEUED: queued\nRUNNING: running\nDONE: done\nFAILED: failed */,
    "filename" VARCHAR(255) NOT NULL /* The name the client gave the file (shown, never used as a path). */,
    "kind" VARCHAR(5) NOT NULL /* "anki" (a package) or "table" (CSV/TSV): what the file was recognised as. */,
    "done" INT NOT NULL /* Notes (or rows) handled so far, of `total` (0 until the file has been read). */,
    "total" INT NOT NULL,
    "result" JSON /* What the import did, once it is done. */,
    "error" VARCHAR(1000) /* Why it failed. */,
    "created_at" TIMESTAMP NOT NULL,
    "finished_at" TIMESTAMP,
    "heartbeat_at" TIMESTAMP NOT NULL /* Written every few seconds by the process running the job: a queued or running job */,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
) /* One file imported in the background (POST /imports), with its progress and outcome. */;
CREATE INDEX IF NOT EXISTS "idx_import_jobs_user_id_e89314" ON "import_jobs" ("user_id", "id");
CREATE INDEX IF NOT EXISTS "idx_import_jobs_status_5f42af" ON "import_jobs" ("status", "heartbeat_at");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "import_jobs";"""


MODELS_STATE = (
    "eJztXW1z2zYS/isYfbJn1DSxXbt1b25GtpVUrWPlJDnpteowkAhJrCmABckoul7++y1AUn"
    "wFTdKSQuv4JbGAXZB8Fi+L3cXi79aS6cS0X1xjrrcu0d8tipcE/oiVt1ELW1ZYKgocPDEl"
    "4RQoZAme2A7HUwcKZ9i0CRTpxJ5yw3IMRgVpnxKkG5xMRQFiM4TRinG9jVaGs0CGYyO2ou"
    "j1cDBE9nRBdNckL0TLOptC0wadV21kTMe0+4nwtSRFC2wD14zxFbw7Eh/QRpjqUMYJUNlE"
    "lqEZZ0vkLAiaGdx2kGMsiWz/o0/1Ea2wPaaOyynREbzM0QOxnMiLLAzbYXwNJQtCI2yGjQ"
    "KmGbz/HBv0WH6oS42/XKI5bE7guRw+9/ffW+KVJQrBR7f++AN+GlQnn4nt0bg2UAsZAMEn"
    "IqmhHey0gDKr1nawEyMTLVoP2swgZrwfGPLZslxz1pYs61HntSQUDUy0KTPdJQ2JrbWzYH"
    "RDbVBHlM4JJRyeKpp3uCu6B3VN0+9GQY/xEAhJvK+M8Ohkhl1TdDLB7b1AWNbStLv+SBt2"
    "R5rWSnXAgCPSnfyiKaOi88Kr2vLr5+IVvjl5dXZx9v3p+dn3QCJfc1Ny8cV7dAiMxyjhuR"
    "u1vsh67GCPQoopBDUUZQrb6wXmXeouJcA9eCtMpyQFdKyBBN7wIUm8A3TzAA8KQsTDUVwd"
    "8tbr/uBDZ3BzGQy3MR1033cHw+5lMNiSI1whkiX+rJmEzp0F/MyD/31ncP1TZ3B0cSxaZj"
    "AleRPVnV9xImqEfEJ5hAMjLowrxkyCaXZnD5kSApgA164kEIyCHXT6HEiv+v1b0fLStv8y"
    "ZUFvlAD3/u1Vd3D0SmIORIZDokMhhHoz81Tp9hvm/XX5FiWrVsk+f9f9ACCT1ZjedjuDu9"
    "7dm0sE/YhTgF/2/54ggO5vCJpBN6TiJKCrMipevSwwLF69VI4LURWXlr88pMR1AyiL9TB7"
    "ZIRcCTnpPtuL4I/6TFTbGCaj3tvucNR5+y42Vm46o66oOZGl60Tp0XlCHJtG0Ife6Cckfq"
    "Lf+nddCSeznTmXTwzpRr+1xDth12EaZSsN61FMguKgKDkYJwaM1XVawq9NhhWrfIwrIeGZ"
    "YCsgVX8eewZCvenfX9120btB97o37PXv4lKUlfE5b9Dt3CaG0czmtqYbs5kxhdcuh3YGb4"
    "N5Acxth1hpoIdLbJpK/TXgeVyDrT+8vg57enJxvlFfxY881Wn4tnN7m16zObHsEruAgLwS"
    "ipWm+5e13geEQJrYskkZKEOGBsw0mLajeUoU0StoKVn8W9BXajYNHJK6IuwYWimDRIRjfw"
    "Oo9oaJEFFhWyqHaISjQdRHVBjPZg+Zlp7AeJdQ9xgnxpz+Qtap/W4CVN8M+8Fv5pmB+yXo"
    "PUFpOD9yvNpYG6OdCr4dvph4at11Z3jduem2UrPAFiC995s5UEgjM182pKLTTvD0QRjlNE"
    "Xv9VbHDIXlymd8/cuAmFhhiPSBHshGDghqCR07YRHIYmCmq5Yny2QJpnguP0k8WzzJR6un"
    "k6XFHEKna+jLrQyXTIKineecMUJa7YGsC/ppOogTkIDtIJtQx/NnYIoiD/4Gnuz5TISfA5"
    "Z4C0AiwsYLPwBVYqcdN1tpVXhyOmiJ+QPhaLUwTCI9NEHL3KU2OsIIZDZ1ORfPEZxraNRe"
    "EW6js5c/HLcFC409o42E62ZMXeoYJvpIPlsGVIFS+FG+DuxoTLwmOnJY7Psy/TX2lFly3g"
    "HAU66axs+yTz/LRhRpY7PCABAw1NmnUhzehHW4mHk4zz6cMhA/kAxrlhpfn/wA0T357rsC"
    "6AKVEl1Zl7AbwvMJt7g/tIuinGA7QLTPzwqAfX6mxFpUpf1Srg0g6hkTxmNWwxhrYzxMGA"
    "+9JVZbEKzDEpxGd0Q+Ky2Jad5Kvblm8OYZZbq/jmL2mKDTHr3t/Hocs8nc9u/eBOSRTn59"
    "279SyWDC9Iz5uoAAAsYG/fLoTzkR2FQwUcY5G2dqra2T4aahrJjjnPsR8z7V/EOS8v5t0D"
    "WbPXdsMN2vda9m2O7BuLdT29XSYtz5mU1aWWarTWU712IlybQ/2aREUPFM2IE8TqIjg0qb"
    "kPimOWcu1dHRu/5whL71KOzjSIiuxZmYHWxp5mGuM2VLRczxlp8hDFnvggrT+ERstCCcIO"
    "is8D80jmnwEOCfCioo8y1cohQQaiObeaWYytBmYRRjfEyFvcqY4o3VS1jQDEdlslJGE0MP"
    "k/HD3gZHlIAezp0JKCVN0PD+jVkbKVQNnXSrb6CqxU4CqUsCiRcOn/zXffe+e3OJPO4xHd"
    "zf+dGRLvVCKG9gcb9EOqNkTF93ereCeoZhgOrJofsVgonFRCH/zpSUymIT8tTZXNMawcwj"
    "XlROQVPTEBb2Of5E/HMSMEUe2Qu2om1ERXQ3gqlER/K4hQUT23F6at1Gg/s3zD0ArKXsnj"
    "59rWU7bmH6YIxbwoFiwcIGi/wxLCdo7K3OouJ6+P7b0fD98SVaiWVnI6MVFr6UKZtTw5NP"
    "WtBbbz1X6kVkrpZ4St5iqimxpAXktQ3aat0xBzSOI+FZYyv7GIG6ocP0KRSKGeZtca7qo8"
    "McbH5ERy+R5xbbyEOcn5oQQkEoWM8Y09tufMdBMPJVSkh3Q19b8X61eCLQZsX7pbD8edi/"
    "U1oYfY6k3cOYOui/oBrb9dkktz4E85Kn5iPd0KE7g74F6rU41icGfno8FOYqbjcRgOYbKp"
    "M2yXbcFiIaSBoqCecsY/OtXtY2DDU2CwP6a4Gzpx9mCSdZ/ZgXtaAbNdePmnKkNkZi9SQl"
    "VoI+Ndd+n3km5kS/e+daE2cGqDSLSmJPsDaRy3W2GsfsJiUFneR9PiO89YEbjgOqHJFn72"
    "dkhWxQ46kOGt46Ztryd/aBYesStnfe7l/sEILKPz3bYXz23vYTxnS1YDaooQHqyHaYZQHd"
    "hJiMzr0gMBw3yulG9tJxSF24Cb4/KM9H3cB95q6PAZnBWFuM2AOhrQzvR6y+necA4R6l5g"
    "jSEj4Qw7bFbOazI8neRg9UZEOZrKUj4ucPI2SITCXmWlhhdHdpib24sxAJScTzkcnmNqIM"
    "SKBBmrG13+mTHvdNlPI43N/3bkq4HFzX0F8Iniqj53HPQ+sfM5d6SWvkk8Q/Z/8saRvfhv"
    "Ik9yen3lISXSTkp+e7IGZ4aZgZAURqpEOObaJd23CGR7F9ruEijeZfXW2qsruLsDU7uzrL"
    "l5NPsP5VEXGcs5FynaXcWOeUYj5g61yz5W22vM2WV73lled6Mze7wYnfvG3u5mhxsf2tx+"
    "Al/PRSdsoAO2HPC/J8ogmZQd/xcnnOHCKC3tCRPLMpzm8KS59LdQalip3tDp5RJN4uSBIQ"
    "TUbyRzRx56ZCJP/MrPCWF+j84mskydTP3CqC+JpAvSa7Z4FwPT9FZ0mbxPNI8ekPjYoSCb"
    "lrHcHVedPp3V16GYXH9CcplIWUyJt+H/6eMwZ/dzvDf18igu11FblsObLqCQmctp+7qaYa"
    "Qt116aIb5c0alinoR4ScORvGhHxYAhZCS2Vj5TLXirYsk0MuwdWcQVIkJdY8za7qEpFso9"
    "YLxeFkKBYpO5WSezzbp1pgz3lgbOPc/ibLrxLdIimC1fg2WWuzstaGiX6rwJ7J3eBeBHdX"
    "Pf8/nuxcCXajhNZLCY3nfK0mcFUbjQenzpL31DNpsXuahrdpolHw9qfgKeRWQL9TiatR7w"
    "INTYFtIe1OhW5RJeMZrXVb1u7Ko57F3MBeVLlT4F3gIhsF1o1qV68FXvi7yjnrIxyNsz7D"
    "KtaEPzTp9uuIaE5ASeD0fmJASXDr6TMDt2hASWTiezzdfnODQRFImxsM/l/CniTqGUFPgT"
    "TUIU/igwpn4JebcMJ/RPLDxeFEcVLGQ0EmADO4vMzYyyrmHRbKyrlfuZ0tH8ZpooqeGFVE"
    "ltjIyFKSk5whYNiOoerrghszMp2eFLEyAZXSzCTr4rqZhW1bzuILbC/K4JxirLNhsCLiO0"
    "miBW9mcKJrHKYimh0vl2cOyeLepz3k5YsfdrtC7soc0hxmUPf6wz3MIKeoKXOzrpLI335u"
    "mJp8V+nUYaAvaSLGNXP6ykkhluBroE2nEpOhw5rYrGbdQMYYqLZUGTQY503AOwHmXeG7Kd"
    "nvwnDV79/GZqKrXvJqgvu3V93B0avj+AKRRl7eOG1hDj+dzAs71NncMlgT0Ncqn9s2gN9J"
    "JjaxfP4nM+ekWg+N8uzx0MD96Lq1Fx10+3f+6Hit2Q7mTvYp/Hzvcop5f1P42W6n8G24ly"
    "lZaRbhGqBUFtgE6/5gPdnx0rid25Tksbmq2Gaw7xPfmgKcciioLYtxV8MTb0Y9MDdDrKMm"
    "7nGoDlLs3ohDRCqd8Kk6WMk0U4eJV3Mp8SMQSYP+0wA6MH/dTu9sllhluIQCDNUuoY2gir"
    "iEBDHC4gYELrJGB2GaP8qMa8H5dBthThDzrjeWa1SWV+gpTWVeehy4NKXByL/l1cR07gJi"
    "qUuQQ/KIQTF2rl02M2Nmc4L9q/iasn3+6q1nQH+Ano+d3JocHSVlMNYO9/7k00I4n+bgfK"
    "rAOZhGSgEdMO3RkLInK0ohnM9zcD5P4wzvbFBDnfJC5cGLch1gn97VXQEhcIrOrb7QN4P1"
    "ALp4nptuFzf6ks94aZmlrLMRlhpfllGzjr7RIEsAHeU5gK6dAPq8CMxJL3ME5PPUXLI5VV"
    "LaAB7j3J8Z8XS3SvU2rLQOnisualS4bnz6PfZXtJ8Oe1FoYrjImRcu0tOCgCtbfVYvfFGe"
    "Q4B530teEzSk7vGHGzTkWnpFqcc5G6nXReoBRhGxZ1nYg6x95YNuMsTdhNvkhdvYrm0R+M"
    "KMfVwu3jG+BvESiDcHG5u8zs/7gFMThtA4i+vqDe0QbkwXrQx/qF/TzvOI4pDmMZeoGobm"
    "7Fq9/InKAHm1SUQdG38InoGdnKcSg6oEwj75AaK7E58tPFEcNEsjrI6Gj7A86XLzuqG9j2"
    "j4EjGZ21/MvvwPuRrQdA=="
)
