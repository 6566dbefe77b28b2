"""From a number to the calls behind it: ranked call lists (:mod:`.calls`), the
``--where`` filter language (:mod:`.where`) and single-trace views (:mod:`.trace`)."""
