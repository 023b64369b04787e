"""zkq's ZooKeeper layer, shared by every process: znode layout (:mod:`.paths`), the job
record (:mod:`.job`), one function per lifecycle transition (:mod:`.lifecycle`) run by
:mod:`.store`, the connection-state policy (:mod:`.zk`), and the coordinator service
(:mod:`.service`, :mod:`.dispatcher`).  It never imports Flask or the worker."""
