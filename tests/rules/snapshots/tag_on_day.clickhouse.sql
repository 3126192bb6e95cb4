SELECT
  COUNT(*)
FROM "p1_users" AS "u"
WHERE
  "u"."user_id" IN (
    SELECT
      "tv1"."user_id"
    FROM "p1_tag_values" AS "tv1"
    WHERE
      "tv1"."tag" = {p2: String}
      AND "tv1"."day" = (
        (
          SELECT
            MAX("tv2"."day")
          FROM "p1_tag_values" AS "tv2"
          WHERE
            "tv2"."tag" = {p0: String} AND "tv2"."day" <= {p1: DATE}
        )
      )
      AND "tv1"."value" = {p3: String}
  )
